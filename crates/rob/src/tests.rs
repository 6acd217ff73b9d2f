use super::*;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, PartialEq)]
struct Item(u64);

impl Keyed for Item {
    fn key(&self) -> u64 {
        self.0
    }
}

fn ready<T: Keyed, E>(a: Acquire<'_, T, E>) -> T {
    match a {
        Acquire::Ready(t) => t,
        Acquire::Wait(_) => panic!("expected an idle item"),
    }
}

#[test]
fn idle_items_are_lifo() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    s.release(Item(1));
    s.release(Item(2));
    s.release(Item(3));
    assert_eq!(ready(s.acquire(&mut Ticket::new())), Item(3));
    assert_eq!(ready(s.acquire(&mut Ticket::new())), Item(2));
}

#[test]
fn affinity_prefers_the_clients_last_item() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    for i in 1..=3 {
        s.release(Item(i));
    }
    let mut t = Ticket::new();
    t.used(1);
    assert_eq!(ready(s.acquire(&mut t)), Item(1));
    // Not idle any more: falls back to LIFO.
    assert_eq!(ready(s.acquire(&mut t)), Item(3));
}

#[tokio::test]
async fn release_hands_straight_to_the_lowest_stride_waiter() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    let mut heavy = Ticket::new();
    heavy.charge(Duration::from_millis(100));
    let mut light = Ticket::new();
    light.charge(Duration::from_millis(10));
    let Acquire::Wait(w_heavy) = s.acquire(&mut heavy) else {
        panic!()
    };
    let Acquire::Wait(w_light) = s.acquire(&mut light) else {
        panic!()
    };
    assert_eq!(s.waiting(), 2);
    s.release(Item(7));
    assert_eq!(w_light.await, Ok(Item(7)));
    assert_eq!(s.idle(), 0, "handed over, never parked");
    s.release(Item(8));
    assert_eq!(w_heavy.await, Ok(Item(8)));
}

#[tokio::test]
async fn lifo_policy_serves_in_arrival_order() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Lifo);
    let mut heavy = Ticket::new();
    heavy.charge(Duration::from_secs(10));
    let Acquire::Wait(first) = s.acquire(&mut heavy) else {
        panic!()
    };
    let Acquire::Wait(_second) = s.acquire(&mut Ticket::new()) else {
        panic!()
    };
    s.release(Item(1));
    assert_eq!(first.await, Ok(Item(1)));
}

#[test]
fn new_clients_start_at_the_floor() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    let mut old = Ticket::new();
    old.charge(Duration::from_secs(5));
    let Acquire::Wait(w) = s.acquire(&mut old) else {
        panic!()
    };
    s.release(Item(1));
    drop(w);
    let _held = ready(s.acquire(&mut Ticket::new()));
    // The floor is now 5s: a newcomer cannot jump ahead with a zero runtime.
    let mut fresh = Ticket::new();
    let Acquire::Wait(_w) = s.acquire(&mut fresh) else {
        panic!()
    };
    assert_eq!(fresh.vruntime(), Duration::from_secs(5).as_nanos() as u64);
}

#[test]
fn a_dropped_waiter_leaves_no_trace() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    let Acquire::Wait(w) = s.acquire(&mut Ticket::new()) else {
        panic!()
    };
    drop(w);
    assert_eq!(s.waiting(), 0);
    s.release(Item(1));
    assert_eq!(s.idle(), 1);
}

#[test]
fn an_item_handed_to_a_waiter_that_then_drops_comes_back() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    let Acquire::Wait(w) = s.acquire(&mut Ticket::new()) else {
        panic!()
    };
    s.release(Item(9));
    assert_eq!(s.idle(), 0);
    drop(w);
    assert_eq!(s.idle(), 1, "released back, not lost");
}

#[tokio::test]
async fn fail_waiters_wakes_everyone_with_the_error() {
    let s: Scheduler<Item, &'static str> = Scheduler::new(Policy::Fair);
    let Acquire::Wait(a) = s.acquire(&mut Ticket::new()) else {
        panic!()
    };
    let Acquire::Wait(b) = s.acquire(&mut Ticket::new()) else {
        panic!()
    };
    assert_eq!(s.fail_waiters("down"), 2);
    assert_eq!(a.await, Err("down"));
    assert_eq!(b.await, Err("down"));
}

#[test]
fn take_idle_selects() {
    let s: Scheduler<Item> = Scheduler::new(Policy::Fair);
    for i in 1..=4 {
        s.release(Item(i));
    }
    let odd = s.take_idle(|t| t.0 % 2 == 1);
    assert_eq!(odd, vec![Item(1), Item(3)]);
    assert_eq!(s.idle(), 2);
}

/// Clients that hold the item 1, 1, 5 and 10 time units share one item; with
/// stride scheduling their completed turns approach 10:10:2:1.
#[tokio::test(start_paused = true)]
async fn throughput_is_inversely_proportional_to_hold_time() {
    let s: Arc<Scheduler<Item>> = Arc::new(Scheduler::new(Policy::Fair));
    s.release(Item(0));
    let holds = [10u64, 10, 50, 100];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut tasks = Vec::new();
    for hold in holds {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut t = Ticket::new();
            let mut turns = 0u32;
            while tokio::time::Instant::now() < deadline {
                let item = match s.acquire(&mut t) {
                    Acquire::Ready(i) => i,
                    Acquire::Wait(w) => w.await.unwrap(),
                };
                let d = Duration::from_millis(hold);
                tokio::time::sleep(d).await;
                t.charge(d);
                s.release(item);
                turns += 1;
                tokio::task::yield_now().await;
            }
            turns
        }));
    }
    let mut turns = Vec::new();
    for t in tasks {
        turns.push(t.await.unwrap() as f64);
    }
    let unit = turns[3];
    let ratios: Vec<f64> = turns.iter().map(|t| t / unit).collect();
    for (got, want) in ratios.iter().zip([10.0, 10.0, 2.0, 1.0]) {
        assert!(
            (got - want).abs() / want < 0.15,
            "ratios {ratios:?} turns {turns:?}"
        );
    }
}
