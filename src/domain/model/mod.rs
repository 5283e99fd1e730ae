//! The shared model: the values every layer speaks of — member countries, cubes, periods and
//! their dimensions, published cells, and the consortium's policy (definition, disclosure,
//! reconciliation, members and their signing keys). Plain types with no I/O and no imports
//! from any other Accord module: everything else builds on this.

pub mod country;
pub mod cube;
pub mod policy;

pub use country::Country;
pub use cube::{Cell, CellValue, Cube, Period, AGE_BANDS};
pub use policy::{
    Agreement, BranchKept, Consortium, Definition, Disclosure, Member, Quorum, Reconcile, Rule, SharingDefault,
    SigningKey, UnknownDuration,
};
