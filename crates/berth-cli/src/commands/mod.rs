pub mod containers;
pub mod copy;
pub mod images;
pub mod system;
pub mod volumes;
