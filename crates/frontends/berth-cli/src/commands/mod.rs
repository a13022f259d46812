pub mod build;
pub mod containers;
pub mod copy;
pub mod images;
pub mod networks;
pub mod runtime;
pub mod system;
pub mod volumes;
