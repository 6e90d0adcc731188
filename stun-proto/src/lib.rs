//! Sans-IO STUN and TURN.
