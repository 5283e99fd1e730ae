//! The queue from Announce calls to the sync loop, fair per member: a member is queued at most
//! once until the sync loop takes it, so one member announcing in a loop holds one slot and
//! cannot crowd out the others.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::domain::model::Country;

/// A queue with room for `members` (one slot each).
pub fn queue(members: usize) -> (AnnounceSender, AnnounceReceiver) {
    let (tx, rx) = mpsc::channel(members.max(1));
    let queued = Arc::new(Mutex::new(HashSet::new()));
    (
        AnnounceSender {
            tx,
            queued: queued.clone(),
        },
        AnnounceReceiver { rx, queued },
    )
}

/// The Exchange service's end.
#[derive(Clone)]
pub struct AnnounceSender {
    tx: mpsc::Sender<Country>,
    queued: Arc<Mutex<HashSet<Country>>>,
}

impl AnnounceSender {
    /// Queues `member` unless it is queued already (then its pull is coming anyway).
    pub fn announce(&self, member: Country) {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if queued.insert(member) && self.tx.try_send(member).is_err() {
            // Full only if more members than slots announce; the periodic pull covers them.
            queued.remove(&member);
        }
    }
}

/// The sync loop's end.
pub struct AnnounceReceiver {
    rx: mpsc::Receiver<Country>,
    queued: Arc<Mutex<HashSet<Country>>>,
}

impl AnnounceReceiver {
    /// The next member that announced; it may announce again from now on.
    pub async fn recv(&mut self) -> Option<Country> {
        let member = self.rx.recv().await?;
        self.queued.lock().unwrap_or_else(|p| p.into_inner()).remove(&member);
        Some(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_member_announcing_in_a_loop_holds_one_slot() {
        let (sender, mut receiver) = queue(3);
        let (fra, ita) = (Country::parse("FRA").unwrap(), Country::parse("ITA").unwrap());
        for _ in 0..1000 {
            sender.announce(fra);
        }
        sender.announce(ita);
        assert_eq!(receiver.recv().await, Some(fra));
        assert_eq!(receiver.recv().await, Some(ita));
        // Taken, FRA may announce again.
        sender.announce(fra);
        assert_eq!(receiver.recv().await, Some(fra));
        drop(sender);
        assert_eq!(receiver.recv().await, None);
    }
}
