//! The bridge between a browser's SDP (RFC 8866 with the ICE attributes of RFC 8839 and the
//! DTLS ones of RFC 8122 / RFC 8842) and the JSON lines of `harness peer`.

use serde_json::{Value, json};

/// What one side says about its transport: the lines `harness peer` prints, or an SDP.
#[derive(Debug, Default, Clone)]
pub struct Description {
    pub ufrag: String,
    pub pwd: String,
    /// `sha-256 AB:CD:…`
    pub fingerprint: String,
    pub setup: String,
    /// `candidate:…` without `a=`.
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

impl Description {
    /// Reads the transport attributes of an SDP (the first media section is the bundle).
    pub fn from_sdp(sdp: &str) -> Self {
        let mut d = Self::default();
        for line in sdp.lines().map(str::trim) {
            let Some(attribute) = line.strip_prefix("a=") else {
                continue;
            };
            let (name, value) = attribute.split_once(':').unwrap_or((attribute, ""));
            match name {
                "ice-ufrag" if d.ufrag.is_empty() => d.ufrag = value.into(),
                "ice-pwd" if d.pwd.is_empty() => d.pwd = value.into(),
                "fingerprint" if d.fingerprint.is_empty() => d.fingerprint = value.into(),
                "setup" if d.setup.is_empty() => d.setup = value.into(),
                "candidate" => d.candidates.push(attribute.into()),
                "end-of-candidates" => d.end_of_candidates = true,
                _ => {}
            }
        }
        d
    }

    /// The JSON lines `harness peer` reads, in the order it expects them.
    pub fn peer_lines(&self) -> Vec<Value> {
        let mut lines = vec![
            json!({"type": "credentials", "ufrag": self.ufrag, "pwd": self.pwd}),
            json!({"type": "dtls", "fingerprint": self.fingerprint, "setup": self.setup}),
        ];
        lines.extend(self.candidates.iter().map(|c| candidate_line(c)));
        if self.end_of_candidates {
            lines.push(json!({"type": "end-of-candidates"}));
        }
        lines
    }

    /// Takes one line `harness peer` printed; true when it was part of the description.
    pub fn absorb(&mut self, line: &Value) -> bool {
        match line["type"].as_str() {
            Some("credentials") => {
                self.ufrag = line["ufrag"].as_str().unwrap_or_default().into();
                self.pwd = line["pwd"].as_str().unwrap_or_default().into();
            }
            Some("dtls") => {
                self.fingerprint = line["fingerprint"].as_str().unwrap_or_default().into();
                self.setup = line["setup"].as_str().unwrap_or_default().into();
            }
            Some("candidate") => {
                let c = line["candidate"].as_str().unwrap_or_default();
                self.candidates.push(c.trim_start_matches("a=").into());
            }
            Some("end-of-candidates") => self.end_of_candidates = true,
            _ => return false,
        }
        true
    }

    /// True once credentials and the DTLS line are known.
    pub fn has_transport(&self) -> bool {
        !self.ufrag.is_empty() && !self.fingerprint.is_empty()
    }

    /// A data-channel-only SDP with these attributes (mid 0, bundled), as offer or answer.
    pub fn to_sdp(&self, with_candidates: bool) -> String {
        let mut sdp = String::from(
            "v=0\r\no=- 4215775240449105457 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             a=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
             c=IN IP4 0.0.0.0\r\n",
        );
        sdp += &format!("a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n", self.ufrag, self.pwd);
        sdp += "a=ice-options:trickle\r\n";
        sdp += &format!(
            "a=fingerprint:{}\r\na=setup:{}\r\n",
            self.fingerprint, self.setup
        );
        sdp += "a=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";
        if with_candidates {
            for c in &self.candidates {
                sdp += &format!("a={c}\r\n");
            }
            if self.end_of_candidates {
                sdp += "a=end-of-candidates\r\n";
            }
        }
        sdp
    }
}

/// A `candidate` line for `harness peer`.
pub fn candidate_line(candidate: &str) -> Value {
    json!({"type": "candidate", "candidate": candidate})
}

#[test]
fn a_browser_offer_becomes_peer_lines() {
    let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
               a=candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host generation 0\r\n\
               a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
               a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\na=end-of-candidates\r\n";
    let d = Description::from_sdp(sdp);
    assert_eq!((d.ufrag.as_str(), d.setup.as_str()), ("abcd", "actpass"));
    let lines = d.peer_lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["fingerprint"], "sha-256 AB:CD");
    assert_eq!(
        lines[2]["candidate"],
        "candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host generation 0"
    );
    let back = Description::from_sdp(&d.to_sdp(true));
    assert_eq!(back.candidates, d.candidates);
    assert!(back.end_of_candidates);
}
