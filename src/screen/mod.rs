//! Screen sources, damage detection and encoding.
