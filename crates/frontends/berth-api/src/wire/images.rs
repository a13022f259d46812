//! images: Docker's wire types to and from berth's.
