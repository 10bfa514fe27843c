//! tally (being written).
