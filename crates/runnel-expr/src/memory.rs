//! Memory metering as the runner does it, so the same expressions fail with "The maximum
//! allowed memory size was exceeded": `MemoryCounter` for what one function builds (format,
//! join, toJSON, wildcard arrays) and `EvaluationMemory` for the results alive across the tree.
//!
//! Must not: allocate in proportion to the input; it only does arithmetic.

/// Bytes charged for any non-string object.
pub(crate) const MIN_OBJECT_SIZE: i64 = 24;
/// Bytes charged per element reference of a filtered array (a pointer).
pub(crate) const POINTER_SIZE: i64 = 8;
const STRING_BASE_OVERHEAD: i64 = 26;

/// The limit was passed; the caller turns it into GitHub's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryExceeded;

/// What the runner charges for a string: a fixed overhead plus two bytes per UTF-16 unit.
pub(crate) fn string_size(s: &str) -> i64 {
    let units: usize = s.chars().map(char::len_utf16).sum();
    STRING_BASE_OVERHEAD.saturating_add(i64::try_from(units).unwrap_or(i64::MAX).saturating_mul(2))
}

/// Counts what one node builds.
#[derive(Debug)]
pub(crate) struct MemoryCounter {
    current: i64,
    max: i64,
}

impl MemoryCounter {
    pub(crate) fn new(max_bytes: usize) -> MemoryCounter {
        MemoryCounter {
            current: 0,
            max: i64::try_from(max_bytes).unwrap_or(i64::MAX),
        }
    }
    pub(crate) fn unlimited() -> MemoryCounter {
        MemoryCounter {
            current: 0,
            max: i64::MAX,
        }
    }
    pub(crate) fn current(&self) -> i64 {
        self.current
    }
    pub(crate) fn add(&mut self, bytes: i64) -> Result<(), MemoryExceeded> {
        let total = self.current.saturating_add(bytes);
        if total > self.max {
            return Err(MemoryExceeded);
        }
        self.current = total;
        Ok(())
    }
    pub(crate) fn add_str(&mut self, s: &str) -> Result<(), MemoryExceeded> {
        self.add(string_size(s))
    }
}

/// Bytes held by results at each tree level. When a node produces a primitive that does not
/// reference context data, everything its children held is released ("trim"); collections
/// keep their children's bytes charged, because they may reference them.
#[derive(Debug)]
pub(crate) struct EvaluationMemory {
    depths: Vec<i64>,
    /// Deepest level with bytes charged; `None` before the first charge.
    max_active: Option<usize>,
    total: i64,
    max: i64,
}

impl EvaluationMemory {
    pub(crate) fn new(max_bytes: usize) -> EvaluationMemory {
        EvaluationMemory {
            depths: Vec::new(),
            max_active: None,
            total: 0,
            max: i64::try_from(max_bytes).unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn add(
        &mut self,
        depth: usize,
        bytes: i64,
        trim_deeper: bool,
    ) -> Result<(), MemoryExceeded> {
        if trim_deeper {
            while let Some(active) = self.max_active.filter(|active| *active > depth) {
                if let Some(amount) = self.depths.get_mut(active) {
                    self.total -= *amount;
                    *amount = 0;
                }
                self.max_active = active.checked_sub(1);
            }
        }
        if self.max_active.is_none_or(|active| depth > active) {
            if self.depths.len() <= depth {
                self.depths.resize(depth + 1, 0);
            }
            self.max_active = Some(depth);
        }
        if let Some(slot) = self.depths.get_mut(depth) {
            *slot = slot.saturating_add(bytes);
        }
        self.total = self.total.saturating_add(bytes);
        if self.total > self.max {
            return Err(MemoryExceeded);
        }
        Ok(())
    }
}
