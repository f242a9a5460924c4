//! chat-gui: the FLTK desktop client for chatd. The library holds everything that needs no
//! widgets, so it can be tested on its own: the view model (`model`), the network thread
//! (`net`), remembered settings (`settings`) and where widgets go (`layout`). The binary
//! (`main.rs`, `ui.rs`) builds the windows and wires them to these.

#![forbid(unsafe_code)]

pub mod layout;
pub mod model;
pub mod net;
pub mod settings;
