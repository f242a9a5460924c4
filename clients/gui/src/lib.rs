//! chat-gui: the FLTK desktop client for chatd. The library holds everything that needs no
//! widgets, so it can be tested on its own: the view model (`model`), the network thread
//! (`net`), the profiles offered at login (`profile`), remembered settings (`settings`), where widgets go (`layout`), the sign-in form's
//! checks (`signin`), the scale and text size (`scale`), the colours (`theme`) and fitting text
//! into a width (`wrap`). The binary (`main.rs`, `ui/`) builds the windows and wires them to
//! these.

#![forbid(unsafe_code)]

pub mod layout;
pub mod model;
pub mod net;
pub mod profile;
pub mod scale;
pub mod settings;
pub mod signin;
pub mod theme;
pub mod wrap;
