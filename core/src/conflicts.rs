//! conflicts (being written).
