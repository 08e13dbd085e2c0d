#![no_std]
//! Exists so that `agent` can name this crate as a build dependency (cargo needs a library
//! target); the programs are in `main.rs`.
