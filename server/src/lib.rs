//! doorstep-server.
