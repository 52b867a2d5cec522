//! Declarations the Windows metadata lacks, written by hand. Each item says why it is here.
