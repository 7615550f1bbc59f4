//! thinshadow: a one-thread RDP agent for Linux thin clients.
pub mod screen;
