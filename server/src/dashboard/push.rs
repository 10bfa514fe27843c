//! Overview cards pushed to open pages over the live feed.
//!
//! A page showing campaign cards listens on `GET /events?cards=1`. Instead of every page
//! refetching a card when its campaign's field work changes (50 open dashboards during a
//! reconnect storm made 110 card requests a second, each recomputing the figures), one task
//! renders each changed campaign's card once per interval and sends the same HTML to every
//! listening page as a `card` event. The cost is one render per changed campaign per interval,
//! whatever the number of pages.
//!
//! Throttle: the first change after a quiet interval is rendered at once (a sync shows on the
//! page immediately); changes arriving within the interval are collected and rendered together
//! when it ends. The task starts with the first listener and renders nothing while nobody
//! listens. Rendering reads the same figures as every page ([`super::pages`]), so a pushed card
//! equals a reloaded one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use crate::live::Change;
use crate::state::AppState;

/// How many cards a slow page may lag before it is told to refetch them.
const BACKLOG: usize = 256;

/// One rendered card, for the campaign it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardUpdate {
    pub campaign: String,
    pub html: Arc<str>,
}

/// The sending side of the card feed, and the flag that the rendering task runs.
#[derive(Debug)]
pub struct CardPush {
    tx: broadcast::Sender<CardUpdate>,
    started: std::sync::Once,
}

impl Default for CardPush {
    fn default() -> Self {
        CardPush {
            tx: broadcast::channel(BACKLOG).0,
            started: std::sync::Once::new(),
        }
    }
}

impl CardPush {
    /// A new page listening for cards; starts the rendering task with the first one. Must be
    /// called within the server's runtime.
    pub fn subscribe(&self, state: &AppState) -> broadcast::Receiver<CardUpdate> {
        let rx = self.tx.subscribe();
        self.started.call_once(|| {
            let changes = state.live().subscribe();
            let interval = state.config().card_push_interval;
            let tx = self.tx.clone();
            let state = state.clone();
            tokio::spawn(run(changes, tx, interval, move |campaigns| {
                let state = state.clone();
                async move {
                    crate::admin::blocking(&state, move |st| {
                        super::pages::render_cards(st, &campaigns)
                    })
                    .await
                }
            }));
        });
        rx
    }
}

/// The campaigns whose card a change may move.
fn campaign_of(change: &Change) -> Option<&str> {
    match change.kind {
        "field" | "campaign" => change.campaign.as_deref(),
        _ => None,
    }
}

/// The rendering loop: wait for a change, render what changed, send it, rest one interval while
/// collecting what changes meanwhile. `render` gets the campaigns to render, or an empty list
/// for "every live campaign" (after falling behind the live feed).
pub(crate) async fn run<R, F>(
    mut changes: broadcast::Receiver<Change>,
    tx: broadcast::Sender<CardUpdate>,
    interval: Duration,
    render: R,
) where
    R: Fn(Vec<String>) -> F,
    F: std::future::Future<Output = Result<Vec<CardUpdate>, crate::AppError>>,
{
    loop {
        // Wait for the first change of a burst.
        let mut dirty = BTreeSet::new();
        let mut all = false;
        match changes.recv().await {
            Ok(change) => {
                if let Some(c) = campaign_of(&change) {
                    dirty.insert(c.to_string());
                }
            }
            Err(RecvError::Lagged(_)) => all = true,
            Err(RecvError::Closed) => return,
        }
        // Take whatever else already arrived.
        loop {
            match changes.try_recv() {
                Ok(change) => {
                    if let Some(c) = campaign_of(&change) {
                        dirty.insert(c.to_string());
                    }
                }
                Err(TryRecvError::Lagged(_)) => all = true,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        if (dirty.is_empty() && !all) || tx.receiver_count() == 0 {
            continue;
        }
        let wanted = if all {
            Vec::new()
        } else {
            dirty.into_iter().collect()
        };
        match render(wanted).await {
            Ok(cards) => {
                for card in cards {
                    // No page listening any more is not an error.
                    let _ = tx.send(card);
                }
            }
            // The pages keep the cards they show; a reload shows the error itself.
            Err(e) => tracing::warn!(code = e.code, "rendering pushed overview cards failed"),
        }
        // Rest: changes arriving now wait in the feed and are rendered together afterwards.
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use doorstep_core::doc::DocId;

    use super::*;
    use crate::live::Live;

    fn field(campaign: &str, building: &str) -> DocId {
        DocId::Field {
            campaign: campaign.into(),
            building: building.into(),
        }
    }

    /// Starts the loop with a renderer that counts its calls and renders "campaign:call".
    fn start(
        live: &Live,
        listeners: usize,
    ) -> (Arc<AtomicUsize>, Vec<broadcast::Receiver<CardUpdate>>) {
        let (tx, _) = broadcast::channel(BACKLOG);
        let pages = (0..listeners).map(|_| tx.subscribe()).collect();
        let renders = Arc::new(AtomicUsize::new(0));
        let counter = renders.clone();
        tokio::spawn(run(
            live.subscribe(),
            tx,
            Duration::from_secs(2),
            move |campaigns| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    Ok(campaigns
                        .into_iter()
                        .map(|c| CardUpdate {
                            html: format!("{c}:{n}").into(),
                            campaign: c,
                        })
                        .collect())
                }
            },
        ));
        (renders, pages)
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_pages_get_each_change_for_one_render_and_a_burst_is_rendered_once_more() {
        let live = Live::default();
        let (renders, mut pages) = start(&live, 50);
        tokio::task::yield_now().await;

        // A head's sync: shown at once on every page, rendered once.
        live.document(&field("c1", "3"), "sync");
        for page in &mut pages {
            let card = page.recv().await.expect("a card");
            assert_eq!((card.campaign.as_str(), &*card.html), ("c1", "c1:1"));
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);

        // A storm within the interval: 30 syncs of two campaigns, and a device's bookkeeping
        // (which moves no card), give one more render of both cards after the interval.
        for b in 0..30 {
            live.document(
                &field(if b % 2 == 0 { "c1" } else { "c2" }, &b.to_string()),
                "sync",
            );
            live.device(&uuid::Uuid::nil());
        }
        for page in &mut pages {
            let a = page.recv().await.expect("a card");
            let b = page.recv().await.expect("a card");
            assert_eq!((&*a.html, &*b.html), ("c1:2", "c2:2"));
        }
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_rendered_while_no_page_listens() {
        let live = Live::default();
        let (renders, pages) = start(&live, 0);
        drop(pages);
        tokio::task::yield_now().await;
        live.document(&field("c1", "3"), "sync");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(renders.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_fell_behind_renders_every_card() {
        let live = Live::default();
        let (tx, mut page) = broadcast::channel(BACKLOG);
        let asked: Arc<std::sync::Mutex<Vec<Vec<String>>>> = Arc::default();
        let seen = asked.clone();
        let changes = live.subscribe();
        // More changes than the live feed holds before the loop reads any.
        for b in 0..2000 {
            live.document(&field("c1", &b.to_string()), "sync");
        }
        tokio::spawn(run(changes, tx, Duration::from_secs(2), move |campaigns| {
            seen.lock().expect("lock").push(campaigns);
            async move {
                Ok(vec![CardUpdate {
                    campaign: "c1".into(),
                    html: "c1".into(),
                }])
            }
        }));
        page.recv().await.expect("a card");
        assert_eq!(
            asked.lock().expect("lock")[0],
            Vec::<String>::new(),
            "asked for every card"
        );
    }
}
