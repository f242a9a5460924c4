//! What the fuzz targets share: the in-process chatd that `server_input` drives through its whole
//! input path, and the seed inputs each target starts from.

pub mod seeds;
pub mod server_input;
