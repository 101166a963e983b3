//! A list that holds a single element without a heap allocation.
//!
//! Nearly every condition has one value; a `Vec` per condition made allocation the largest
//! cost of compiling a policy.

use std::ops::Deref;

/// Zero, one or many values; one value is stored inline.
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany<T> {
    One(T),
    /// Zero or several values.
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, value: T) {
        match self {
            OneOrMany::Many(v) if v.is_empty() => *self = OneOrMany::One(value),
            OneOrMany::Many(v) => v.push(value),
            OneOrMany::One(_) => {
                if let OneOrMany::One(first) = std::mem::take(self) {
                    *self = OneOrMany::Many(vec![first, value]);
                }
            }
        }
    }

    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(x) => std::slice::from_ref(x),
            OneOrMany::Many(v) => v,
        }
    }
}

impl<T> Deref for OneOrMany<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> FromIterator<T> for OneOrMany<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut out = OneOrMany::new();
        for x in iter {
            out.push(x);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_none_to_one_to_many() {
        let mut v = OneOrMany::new();
        assert!(v.is_empty());
        v.push(1);
        assert!(matches!(v, OneOrMany::One(1)));
        v.push(2);
        v.push(3);
        assert_eq!(v.as_slice(), [1, 2, 3]);
        let collected: OneOrMany<&str> = ["a"].into_iter().collect();
        assert_eq!(&*collected, ["a"]);
    }
}
