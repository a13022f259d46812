pub mod containers;
pub mod images;
pub mod system;
pub mod volumes;
