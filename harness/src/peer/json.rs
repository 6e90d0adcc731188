//! Peer events as the JSON `event` lines of the command line:
//! `{"type":"event","signal":"new-selected-pair",…}`, with the names users of libnice and
//! WebRTC know (DESIGN.md, "Names the user will look for") and the detail to act on.

use ice_proto::{ComponentState, ConnectionState, FailureReason};
use serde_json::{Value, json};

use super::event::{Event, PeerState};

/// The `event` line of `e`, or `None` for application data (the command line's data check
/// reports that itself).
pub fn event_json(e: &Event) -> Option<Value> {
    Some(match e {
        Event::StateChanged(state) => {
            let mut v = json!({"type": "event", "signal": "state-changed", "state": state.name()});
            if let PeerState::Failed(error) = state {
                v["reason"] = json!(error.to_string());
            }
            v
        }
        Event::Ice(ice) => ice_json(ice),
        Event::DtlsStarted { role } => {
            json!({"type": "event", "signal": "dtls-started", "role": role.as_str()})
        }
        Event::DtlsConnected(done) => json!({
            "type": "event",
            "signal": "dtls-connected",
            "version": match done.version {
                dtls_proto::ProtocolVersion::Dtls13 => "DTLS 1.3",
                _ => "DTLS 1.2",
            },
            "cipher-suite": format!("{:?}", done.cipher_suite),
            "group": format!("{:?}", done.group),
            "srtp-profile": done.srtp.as_ref().map(|k| k.profile.openssl_name()),
            "srtp-keying-material-bytes": done.srtp.as_ref().map(|k| k.material.len()),
            "remote-fingerprint": done.peer_fingerprint.to_string(),
        }),
        Event::Data(_) => return None,
    })
}

fn ice_json(e: &ice_proto::Event) -> Value {
    use ice_proto::Event as E;
    match e {
        E::NewLocalCandidate { candidate, .. } => json!({
            "type": "event", "signal": "new-candidate", "candidate": candidate.to_string(),
        }),
        E::ComponentGatheringDone { component, .. } => json!({
            "type": "event", "signal": "component-gathering-done", "component": component,
        }),
        E::CandidateGatheringDone { .. } => {
            json!({"type": "event", "signal": "candidate-gathering-done"})
        }
        E::ComponentStateChanged {
            component,
            state,
            reason,
            ..
        } => {
            let mut v = json!({
                "type": "event", "signal": "component-state-changed",
                "component": component, "state": component_state(*state),
            });
            if let Some(r) = reason {
                v["reason"] = json!(match r {
                    FailureReason::ChecksFailed => "checks-failed",
                    FailureReason::ConsentExpired => "consent-expired",
                    _ => "failed",
                });
            }
            v
        }
        E::NewSelectedPair {
            component,
            local,
            remote,
            ..
        } => json!({
            "type": "event", "signal": "new-selected-pair", "component": component,
            "local": local.to_string(), "remote": remote.to_string(),
        }),
        E::ConnectionStateChanged(state) => json!({
            "type": "event", "signal": "connection-state-changed",
            "state": connection_state(*state),
        }),
        E::RoleChanged { controlling } => json!({
            "type": "event", "signal": "role-changed", "controlling": controlling,
        }),
        E::Problem(p) => json!({
            "type": "event", "signal": "problem", "detail": format!("{p:?}"),
        }),
        other => json!({"type": "event", "signal": "other", "detail": format!("{other:?}")}),
    }
}

/// libnice's component state names.
fn component_state(s: ComponentState) -> &'static str {
    match s {
        ComponentState::Disconnected => "disconnected",
        ComponentState::Gathering => "gathering",
        ComponentState::Connecting => "connecting",
        ComponentState::Connected => "connected",
        ComponentState::Ready => "ready",
        ComponentState::Failed => "failed",
        _ => "unknown",
    }
}

/// W3C `RTCIceConnectionState` names.
fn connection_state(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::New => "new",
        ConnectionState::Checking => "checking",
        ConnectionState::Connected => "connected",
        ConnectionState::Completed => "completed",
        ConnectionState::Disconnected => "disconnected",
        ConnectionState::Failed => "failed",
        ConnectionState::Closed => "closed",
        _ => "unknown",
    }
}
