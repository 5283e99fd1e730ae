//! The shared model: the values every layer speaks of — member countries, cubes, periods and
//! their dimensions, published cells. Plain types with no I/O and no imports from any other
//! Accord module: everything else builds on this (the consortium's policy on it, in
//! `consortium`).

pub mod country;
pub mod cube;

pub use country::Country;
pub use cube::{Cell, CellValue, Cube, Period, AGE_BANDS};
