pub mod containers;
pub mod copy;
pub mod images;
pub mod runtime;
pub mod system;
pub mod volumes;
