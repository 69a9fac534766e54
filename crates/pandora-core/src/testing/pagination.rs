//! Keyset pagination and deal filters.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::fixtures::{deal, deals_batch, new_workspace, write, StoreRef};
use crate::batch::RecordBatch;
use crate::model::{Deal, NewUser, StageCategory};
use crate::query::{Cursor, CursorValue, DealFilter, Direction, PageRequest, Sort, SortKey};

const SORTS: [Sort; 6] = [
    Sort {
        key: SortKey::UpdatedAt,
        direction: Direction::Desc,
    },
    Sort {
        key: SortKey::UpdatedAt,
        direction: Direction::Asc,
    },
    Sort {
        key: SortKey::CloseDate,
        direction: Direction::Desc,
    },
    Sort {
        key: SortKey::CloseDate,
        direction: Direction::Asc,
    },
    Sort {
        key: SortKey::Amount,
        direction: Direction::Desc,
    },
    Sort {
        key: SortKey::Amount,
        direction: Direction::Asc,
    },
];

/// The sort position of a deal: (is the value NULL, value, id), comparable within one sort key.
fn position(d: &Deal, sort: Sort) -> (bool, CursorValueOrd, uuid::Uuid) {
    let c = Cursor::after_deal(d, sort);
    let v = match c.value {
        CursorValue::Timestamp(t) => CursorValueOrd::Int(t.timestamp_micros() as i128),
        CursorValue::Date(d) => CursorValueOrd::Int(d.num_days_from_ce_i128()),
        CursorValue::Decimal(x) => CursorValueOrd::Dec(x),
        CursorValue::Integer(i) => CursorValueOrd::Int(i128::from(i)),
        CursorValue::Null => CursorValueOrd::Null,
    };
    (matches!(v, CursorValueOrd::Null), v, d.id)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum CursorValueOrd {
    Null,
    Int(i128),
    Dec(Decimal),
}

trait DaysI128 {
    fn num_days_from_ce_i128(&self) -> i128;
}
impl DaysI128 for NaiveDate {
    fn num_days_from_ce_i128(&self) -> i128 {
        use chrono::Datelike;
        self.num_days_from_ce() as i128
    }
}

/// Checks that `deals` are in `sort` order: NULL values last in either direction.
pub(super) fn assert_ordered(deals: &[Deal], sort: Sort) {
    for pair in deals.windows(2) {
        let (a, b) = (position(&pair[0], sort), position(&pair[1], sort));
        let ok = match (a.0, b.0) {
            (false, true) => true,
            (true, false) => false,
            _ => match sort.direction {
                Direction::Asc => (a.1.clone(), a.2) < (b.1.clone(), b.2),
                Direction::Desc => (a.1.clone(), a.2) > (b.1.clone(), b.2),
            },
        };
        assert!(ok, "{sort:?}: {a:?} must come before {b:?}");
    }
}

pub(super) async fn walk(
    store: &StoreRef,
    ws: uuid::Uuid,
    filter: &DealFilter,
    sort: Sort,
    limit: u32,
) -> Vec<Deal> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit,
        sort,
        after: None,
    };
    loop {
        let p = store.list_deals(ws, filter, &page).await.expect("list");
        assert!(p.data.len() <= limit as usize);
        all.extend(p.data);
        match p.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    all
}

/// Pages neither skip nor repeat rows when many rows share a sort value and
/// rows are inserted between pages, for every sort key and direction.
pub async fn keyset_pagination_with_ties_and_inserts(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    // 90 deals in one batch: updated_at is shared by many, and only 3 amounts and 3 dates exist.
    let originals: Vec<_> = (0..90)
        .map(|i| {
            let amount = [100, 200, 300][i % 3];
            let day = [1, 15, 28][(i / 3) % 3] as u32;
            deal(&format!("o{i:03}"), Some(amount), Some((2026, 2, day)))
        })
        .collect();
    write(&store, ws, &deals_batch(originals)).await;
    let original_ids: HashSet<String> = (0..90).map(|i| format!("o{i:03}")).collect();

    let mut inserted = 0;
    for sort in SORTS {
        let mut seen: Vec<Deal> = Vec::new();
        let mut page = PageRequest {
            limit: 7,
            sort,
            after: None,
        };
        loop {
            let p = store
                .list_deals(ws, &DealFilter::default(), &page)
                .await
                .expect("list");
            assert!(p.data.len() <= 7);
            seen.extend(p.data);
            // Insert rows sharing the tied values between pages.
            inserted += 1;
            write(
                &store,
                ws,
                &deals_batch(vec![deal(
                    &format!("n{inserted:04}"),
                    Some(200),
                    Some((2026, 2, 15)),
                )]),
            )
            .await;
            match p.next_cursor {
                Some(c) => page = page.next(c),
                None => break,
            }
        }
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for d in &seen {
            *counts.entry(d.fields.source_id.as_str()).or_default() += 1;
        }
        let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(repeated.is_empty(), "{sort:?}: repeated rows {repeated:?}");
        let missing: Vec<_> = original_ids
            .iter()
            .filter(|id| !counts.contains_key(id.as_str()))
            .collect();
        assert!(missing.is_empty(), "{sort:?}: skipped rows {missing:?}");
        assert_ordered(&seen, sort);
    }
}

/// Deals without a sort value come after all others, in both directions, and are paged too.
pub async fn null_sort_values_come_last(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let deals: Vec<_> = (0..20)
        .map(|i| {
            let amount = (i % 4 != 0).then_some(i as i64 * 10);
            let close = (i % 5 != 0).then_some((2026, 4, (i % 28 + 1) as u32));
            deal(&format!("n{i:02}"), amount, close)
        })
        .collect();
    write(&store, ws, &deals_batch(deals)).await;
    for sort in SORTS {
        let all = walk(&store, ws, &DealFilter::default(), sort, 3).await;
        assert_eq!(all.len(), 20, "{sort:?}");
        assert_eq!(all.iter().map(|d| d.id).collect::<HashSet<_>>().len(), 20);
        assert_ordered(&all, sort);
        let nulls = all
            .iter()
            .filter(|d| match sort.key {
                SortKey::Amount => d.fields.amount.is_none(),
                SortKey::CloseDate => d.fields.close_date.is_none(),
                SortKey::UpdatedAt | SortKey::Risk => false,
            })
            .count();
        let expected = match sort.key {
            SortKey::Amount => 5,
            SortKey::CloseDate => 4,
            SortKey::UpdatedAt | SortKey::Risk => 0,
        };
        assert_eq!(nulls, expected, "{sort:?}");
    }
}

async fn ids(store: &StoreRef, ws: uuid::Uuid, filter: DealFilter) -> Vec<String> {
    let mut v: Vec<String> = walk(store, ws, &filter, Sort::default(), 500)
        .await
        .into_iter()
        .map(|d| d.fields.source_id)
        .collect();
    v.sort();
    v
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

/// Every deal filter, alone and combined.
pub async fn deal_filters(store: StoreRef) {
    let ws = new_workspace(&store, "A").await;
    let mut batch = RecordBatch::new("test");
    batch.users = ["rep1", "rep2"]
        .iter()
        .map(|u| NewUser {
            source_id: u.to_string(),
            active: true,
            ..Default::default()
        })
        .collect();
    let mk = |id: &str,
              name: &str,
              stage: &str,
              cat: StageCategory,
              pipeline: &str,
              owner: &str,
              amount: Option<&str>,
              close: Option<NaiveDate>| {
        let mut d = deal(id, None, None);
        d.name = name.into();
        d.stage = Some(stage.into());
        d.stage_category = cat;
        d.pipeline = Some(pipeline.into());
        d.owner_source_id = Some(owner.into());
        d.amount = amount.map(|a| a.parse().expect("decimal"));
        d.close_date = close;
        d
    };
    batch.deals = vec![
        mk(
            "a",
            "Acme renewal",
            "proposal",
            StageCategory::Open,
            "sales",
            "rep1",
            Some("1000"),
            date(2026, 1, 10),
        ),
        mk(
            "b",
            "ACME expansion",
            "closedwon",
            StageCategory::Won,
            "sales",
            "rep2",
            Some("5000.50"),
            date(2026, 1, 31),
        ),
        mk(
            "c",
            "Globex 100% upsell",
            "closedlost",
            StageCategory::Lost,
            "renewals",
            "rep1",
            Some("250"),
            date(2026, 2, 1),
        ),
        mk(
            "d",
            "Initech_pilot",
            "proposal",
            StageCategory::Open,
            "renewals",
            "rep2",
            None,
            None,
        ),
        mk(
            "e",
            "Umbrella",
            "discovery",
            StageCategory::Open,
            "sales",
            "nobody",
            Some("99999.9999"),
            date(2026, 3, 15),
        ),
    ];
    write(&store, ws, &batch).await;
    let rep1 = store
        .list_users(ws, &PageRequest::first(10))
        .await
        .expect("users")
        .data
        .into_iter()
        .find(|u| u.fields.source_id == "rep1")
        .expect("rep1");

    let all = || DealFilter::default();
    assert_eq!(ids(&store, ws, all()).await, ["a", "b", "c", "d", "e"]);
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                stage: Some("proposal".into()),
                ..all()
            }
        )
        .await,
        ["a", "d"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                pipeline: Some("renewals".into()),
                ..all()
            }
        )
        .await,
        ["c", "d"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                owner_id: Some(rep1.id),
                ..all()
            }
        )
        .await,
        ["a", "c"]
    );
    assert!(ids(
        &store,
        ws,
        DealFilter {
            owner_id: Some(uuid::Uuid::now_v7()),
            ..all()
        }
    )
    .await
    .is_empty());
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                status: Some(StageCategory::Open),
                ..all()
            }
        )
        .await,
        ["a", "d", "e"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                status: Some(StageCategory::Won),
                ..all()
            }
        )
        .await,
        ["b"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                status: Some(StageCategory::Lost),
                ..all()
            }
        )
        .await,
        ["c"]
    );
    // Close dates are inclusive at both ends.
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                close_date_from: date(2026, 1, 31),
                close_date_to: date(2026, 2, 1),
                ..all()
            }
        )
        .await,
        ["b", "c"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                close_date_from: date(2026, 2, 1),
                ..all()
            }
        )
        .await,
        ["c", "e"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                close_date_to: date(2026, 1, 10),
                ..all()
            }
        )
        .await,
        ["a"]
    );
    // Amounts are inclusive; deals without an amount never match an amount filter.
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                min_amount: Some(Decimal::from(1000)),
                ..all()
            }
        )
        .await,
        ["a", "b", "e"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                max_amount: Some("5000.50".parse().expect("decimal")),
                ..all()
            }
        )
        .await,
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                min_amount: Some("5000.5".parse().expect("decimal")),
                max_amount: Some("99999.9999".parse().expect("decimal")),
                ..all()
            }
        )
        .await,
        ["b", "e"]
    );
    // Name search: case-insensitive, % and _ literal.
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                q: Some("acme".into()),
                ..all()
            }
        )
        .await,
        ["a", "b"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                q: Some("100%".into()),
                ..all()
            }
        )
        .await,
        ["c"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                q: Some("%".into()),
                ..all()
            }
        )
        .await,
        ["c"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                q: Some("c_e".into()),
                ..all()
            }
        )
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                q: Some("_".into()),
                ..all()
            }
        )
        .await,
        ["d"]
    );
    // updated_since: only what changed at or after the instant.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = crate::model::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut again = batch.clone();
    again.users.clear();
    again.deals.retain(|d| d.source_id == "e");
    again.deals[0].name = "Umbrella Corp".into();
    write(&store, ws, &again).await;
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                updated_since: Some(since),
                ..all()
            }
        )
        .await,
        ["e"]
    );
    // Combined.
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                status: Some(StageCategory::Open),
                pipeline: Some("sales".into()),
                q: Some("um".into()),
                ..all()
            }
        )
        .await,
        ["e"]
    );
    assert_eq!(
        ids(
            &store,
            ws,
            DealFilter {
                stage: Some("proposal".into()),
                owner_id: Some(rep1.id),
                min_amount: Some(Decimal::from(1)),
                ..all()
            }
        )
        .await,
        ["a"]
    );
}
