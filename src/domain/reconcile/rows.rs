//! The view's mirror rows: a map from [`MirrorKey`] to [`MirrorRow`] held as one vector sorted
//! by key. A view is built once, in key order, and then only read (in order, by range or by
//! key), so a sorted vector gives the map's reads at about two thirds of a `BTreeMap`'s memory,
//! and it is filled straight from the sorted cells without the intermediate vector that
//! collecting into a `BTreeMap` makes.

use super::{MirrorKey, MirrorRow};

/// Mirror rows in key order, each key once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows(Vec<(MirrorKey, MirrorRow)>);

impl Rows {
    /// Rows from entries in strictly ascending key order.
    pub(super) fn from_sorted(entries: Vec<(MirrorKey, MirrorRow)>) -> Rows {
        debug_assert!(
            entries.windows(2).all(|w| w[0].0 < w[1].0),
            "rows in strictly ascending key order"
        );
        Rows(entries)
    }

    /// `old`'s rows but those `replaced` names, with `new` (in key order) in their place.
    pub(super) fn merged(old: &Rows, replaced: impl Fn(&MirrorKey) -> bool, new: Rows) -> Rows {
        let mut out = Vec::with_capacity(old.0.len() + new.0.len());
        let mut new = new.0.into_iter().peekable();
        for (key, row) in old.0.iter().filter(|(key, _)| !replaced(key)) {
            while let Some(next) = new.next_if(|(k, _)| k < key) {
                out.push(next);
            }
            out.push((*key, row.clone()));
        }
        out.extend(new);
        Rows::from_sorted(out)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, key: &MirrorKey) -> Option<&MirrorRow> {
        self.0.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| &self.0[i].1)
    }

    /// Every row, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&MirrorKey, &MirrorRow)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The rows from `first` on, in key order.
    pub fn range_from(&self, first: &MirrorKey) -> impl Iterator<Item = (&MirrorKey, &MirrorRow)> {
        let start = self.0.partition_point(|(k, _)| k < first);
        self.0[start..].iter().map(|(k, v)| (k, v))
    }
}

impl std::ops::Index<&MirrorKey> for Rows {
    type Output = MirrorRow;

    fn index(&self, key: &MirrorKey) -> &MirrorRow {
        self.get(key).expect("no row for this key")
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = (&'a MirrorKey, &'a MirrorRow);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (MirrorKey, MirrorRow)>,
        fn(&'a (MirrorKey, MirrorRow)) -> (&'a MirrorKey, &'a MirrorRow),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}
