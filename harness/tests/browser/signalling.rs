//! The page's side of signalling: a small HTTP server on loopback that serves the page, takes
//! what it posts (`POST /signal`) and hands it what the test queued (`GET /poll`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, mpsc};

use serde_json::Value;

const PAGE: &str = include_str!("page.html");
/// The largest request body the server reads (an SDP with candidates is a few KB).
const MAX_BODY: usize = 1 << 20;

/// The server: its address, what the page posted, and what waits for the page.
pub struct Signalling {
    pub address: SocketAddr,
    to_page: Arc<Mutex<VecDeque<Value>>>,
}

impl Signalling {
    /// Starts serving on an ephemeral loopback port; every message the page posts is sent on
    /// `from_page`.
    pub fn start(from_page: mpsc::Sender<Value>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the signalling server");
        let address = listener.local_addr().expect("local address");
        let to_page = Arc::new(Mutex::new(VecDeque::new()));
        let queue = Arc::clone(&to_page);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (queue, from_page) = (Arc::clone(&queue), from_page.clone());
                std::thread::spawn(move || serve(stream, &queue, &from_page));
            }
        });
        Self { address, to_page }
    }

    /// Queues a message for the page's next poll.
    pub fn send(&self, message: Value) {
        self.to_page.lock().expect("queue lock").push_back(message);
    }
}

/// Answers one request (one per connection).
fn serve(stream: TcpStream, to_page: &Mutex<VecDeque<Value>>, from_page: &mpsc::Sender<Value>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0).min(MAX_BODY);
            }
        }
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let (content_type, response) = if request_line.starts_with("POST /signal") {
        if let Ok(message) = serde_json::from_slice::<Value>(&body) {
            let _ = from_page.send(message);
        }
        ("application/json", "{}".to_owned())
    } else if path.starts_with("/poll") {
        let messages: Vec<Value> = to_page.lock().expect("queue lock").drain(..).collect();
        ("application/json", Value::from(messages).to_string())
    } else if path == "/" || path.starts_with("/?") {
        ("text/html; charset=utf-8", PAGE.to_owned())
    } else {
        ("text/plain", String::new())
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{response}",
        response.len()
    );
}
