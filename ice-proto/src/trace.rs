//! Diagnostics (feature `tracing`): every event the agent reports becomes a log record under
//! the target `ice`, with the agent's id (its first stream's local ufrag, the value both sides'
//! SDP carry), the stream and the component as fields — the flow an operator reads in erizo's
//! logs: candidates discovered, gathering done, component and connection states, the selected
//! pair. Without the feature this module is not compiled and nothing is logged.

use tracing::{debug, info, warn};

use crate::event::{ComponentState, Event};

/// Logs one event of agent `agent`.
pub(crate) fn event(agent: &str, event: &Event) {
    match event {
        Event::NewLocalCandidate { stream, candidate } => {
            info!(target: "ice", agent, stream = stream.0, "candidate discovered: {candidate}");
        }
        Event::NewPeerReflexiveRemoteCandidate { stream, candidate } => {
            info!(target: "ice", agent, stream = stream.0, "peer-reflexive remote candidate: {candidate}");
        }
        Event::ComponentGatheringDone { stream, component } => {
            info!(target: "ice", agent, stream = stream.0, component, "component gathering done");
        }
        Event::CandidateGatheringDone { stream } => {
            info!(target: "ice", agent, stream = stream.0, "candidate gathering done");
        }
        Event::ComponentStateChanged {
            stream,
            component,
            state: ComponentState::Failed,
            reason,
        } => {
            warn!(target: "ice", agent, stream = stream.0, component, "component failed: {reason:?}");
        }
        Event::ComponentStateChanged {
            stream,
            component,
            state,
            ..
        } => {
            info!(target: "ice", agent, stream = stream.0, component, "component state {state:?}");
        }
        Event::NewSelectedPair {
            stream,
            component,
            local,
            remote,
        } => {
            info!(target: "ice", agent, stream = stream.0, component, "selected pair {local} <-> {remote}");
        }
        Event::ConnectionStateChanged(state) => {
            info!(target: "ice", agent, "connection state {state:?}");
        }
        Event::RoleChanged { controlling } => {
            info!(target: "ice", agent, controlling, "role changed by a conflict");
        }
        other => debug!(target: "ice", agent, "{other:?}"),
    }
}
