//! A shard's transactions, in numbered slots.
//!
//! A transaction is found by its id far more often than it is created: every
//! response and retransmission, every timer that fires or turns out stale,
//! looks one up. In a hash map of boxed transactions that costs a probe of
//! the map's control bytes, its bucket and then the box, three cache misses
//! for a transaction not touched lately (the timers' case). A slot is found
//! by its number: one miss, and no hashing.
//!
//! The key handed out is the slot's number and its generation, which a
//! removal advances: a key of a removed value finds nothing, even once the
//! slot holds another. A slot whose generation would pass the limit is
//! retired instead of reused, so no key is ever handed out twice. Freed slots
//! are reused last-freed first, while their memory is still warm.
//!
//! Slots come in chunks that never move, so growing costs no copy of the
//! values already in. Chunks are not given back: a shard keeps room for as
//! many transactions as it held at its busiest (the table's bound,
//! `max_transactions`, bounds that), as a hash map keeps its capacity.

/// Slots per chunk: about 16 KB of transactions.
const CHUNK: usize = 64;

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

pub(super) struct Slots<T> {
    chunks: Vec<Box<[Slot<T>]>>,
    /// Slots freed, to reuse (last freed first).
    free: Vec<u32>,
    /// Slots ever used: the next fresh one.
    used: u32,
    /// Values held now.
    len: usize,
    /// Generations stay below it.
    generations: u32,
}

impl<T> Slots<T> {
    /// No slots yet; the keys it hands out stay below `2^32 · generations`.
    pub(super) fn new(generations: u32) -> Slots<T> {
        Slots { chunks: Vec::new(), free: Vec::new(), used: 0, len: 0, generations: generations.max(1) }
    }

    /// The generations a slot goes through (its keys stay below `2^32 ·` this).
    #[cfg(test)]
    pub(super) fn generations(&self) -> u32 {
        self.generations
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn split(key: u64) -> (usize, u32) {
        ((key & u64::from(u32::MAX)) as usize, (key >> 32) as u32)
    }

    fn slot(&self, index: usize) -> Option<&Slot<T>> {
        self.chunks.get(index / CHUNK).map(|c| &c[index % CHUNK])
    }

    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<T>> {
        self.chunks.get_mut(index / CHUNK).map(|c| &mut c[index % CHUNK])
    }

    /// Puts `value` in a slot: its key, or `None` when every slot number is
    /// used (2^32 of them).
    pub(super) fn insert(&mut self, value: T) -> Option<u64> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                let index = self.used;
                self.used = self.used.checked_add(1)?;
                if index as usize == self.chunks.len() * CHUNK {
                    self.chunks.push((0..CHUNK).map(|_| Slot { generation: 0, value: None }).collect());
                }
                index
            }
        };
        let slot = self.slot_mut(index as usize).expect("a slot handed out is in a chunk");
        debug_assert!(slot.value.is_none());
        slot.value = Some(value);
        let key = u64::from(slot.generation) << 32 | u64::from(index);
        self.len += 1;
        Some(key)
    }

    pub(super) fn get(&self, key: u64) -> Option<&T> {
        let (index, generation) = Slots::<T>::split(key);
        self.slot(index).filter(|s| s.generation == generation).and_then(|s| s.value.as_ref())
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut T> {
        let (index, generation) = Slots::<T>::split(key);
        self.slot_mut(index).filter(|s| s.generation == generation).and_then(|s| s.value.as_mut())
    }

    /// Takes the value of `key` out; its slot is reused under another key.
    pub(super) fn remove(&mut self, key: u64) -> Option<T> {
        let (index, generation) = Slots::<T>::split(key);
        let generations = self.generations;
        let slot = self.slot_mut(index).filter(|s| s.generation == generation)?;
        let value = slot.value.take()?;
        slot.generation += 1;
        let reusable = slot.generation < generations;
        self.len -= 1;
        if reusable {
            self.free.push(index as u32);
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_key_finds_nothing_once_its_slot_is_reused() {
        let mut slots = Slots::new(u32::MAX);
        let a = slots.insert("a").unwrap();
        let b = slots.insert("b").unwrap();
        assert_eq!((slots.get(a), slots.get(b), slots.len()), (Some(&"a"), Some(&"b"), 2));
        assert_eq!(slots.remove(a), Some("a"));
        assert_eq!(slots.remove(a), None);
        assert_eq!((slots.get(a), slots.len()), (None, 1));
        let c = slots.insert("c").unwrap();
        // The slot is a's, the key is not.
        assert_eq!(c & u64::from(u32::MAX), a & u64::from(u32::MAX));
        assert_ne!(c, a);
        assert_eq!((slots.get(a), slots.get(c)), (None, Some(&"c")));
        *slots.get_mut(c).unwrap() = "C";
        assert_eq!(slots.get_mut(a), None);
        assert_eq!(slots.get(c), Some(&"C"));
    }

    #[test]
    fn keys_are_never_handed_out_twice() {
        // Two generations a slot: each is retired after its second value.
        let mut slots = Slots::new(2);
        let mut seen = std::collections::HashSet::new();
        let mut live = Vec::new();
        for round in 0..5 {
            for i in 0..100 {
                let key = slots.insert(round * 100 + i).unwrap();
                assert!(seen.insert(key), "key {key:#x} handed out twice");
                live.push(key);
            }
            for key in live.drain(..) {
                assert!(slots.remove(key).is_some());
            }
        }
        assert_eq!(slots.len(), 0);
        // Slots good for two values each: rounds 0, 2 and 4 took fresh ones.
        assert_eq!(slots.used, 300);
    }

    #[test]
    fn values_stay_put_as_chunks_are_added() {
        let mut slots = Slots::new(u32::MAX);
        let keys: Vec<u64> = (0..CHUNK * 3 + 5).map(|i| slots.insert(i).unwrap()).collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(slots.get(*key), Some(&i));
        }
        assert_eq!(slots.len(), keys.len());
        // A key from beyond any chunk, or of a generation never reached, finds nothing.
        assert_eq!(slots.get(u64::from(u32::MAX)), None);
        assert_eq!(slots.get(1 << 40), None);
    }
}
