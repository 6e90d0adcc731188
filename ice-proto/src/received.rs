//! Received datagrams (DESIGN.md, the sans-IO contract): STUN for the agent is consumed —
//! checks (RFC 8445 §7.3), responses (§7.2.5), keepalives (§11) —; anything else is handed
//! back, with the stream, component and pair it arrived on when it arrived on one of our
//! addresses, or as not ICE's (for a TURN client or a STUN server of the caller's).

use stun_proto::Message;

use crate::check::ReceivedCheck;
use crate::connectivity::Answers;
use crate::handled::Handled;
use crate::path::Path;
use crate::stream::Stream;

impl Stream {
    /// Non-STUN data that arrived on `path`, if it arrived on one of this stream's bases —
    /// or on its previous path after a restart.
    pub(crate) fn data<'a>(&mut self, path: Path, payload: &'a [u8]) -> Option<Handled<'a>> {
        let source = path.remote;
        if let Some(l) = self.local.iter().find(|l| l.receives(path)) {
            let component = l.candidate.component;
            let pair = self.checklist.count_received(path, payload.len());
            return Some(Handled::Data {
                stream: self.id,
                component,
                pair,
                source,
                data: payload,
            });
        }
        // After a restart that dropped the base, the previous path still carries data
        // until a new pair is selected (RFC 8445 §9): both ways.
        let c = self.components.iter().find(|c| c.previous == Some(path))?;
        Some(Handled::Data {
            stream: self.id,
            component: c.id,
            pair: None,
            source,
            data: payload,
        })
    }
}

/// The live stream whose local ufrag a check's USERNAME names (RFC 8445 §7.3).
pub(crate) fn addressee(streams: &[Stream], check: &ReceivedCheck<'_>) -> Option<usize> {
    streams
        .iter()
        .position(|st| !st.removed && st.local_credentials.ufrag == check.local_ufrag)
}

/// The stream (index) one of whose checks or consent checks `response` answers, and which.
pub(crate) fn answered(streams: &[Stream], response: &Message<'_>) -> Option<(usize, Answers)> {
    let tid = response.transaction_id();
    (streams.iter().enumerate()).find_map(|(s, st)| st.answers(&tid).map(|a| (s, a)))
}
