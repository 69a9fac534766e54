//! Conformance: `RecordStore::scan_skill_deals`, the bulk read behind skill
//! contexts, against `SkillStore::scan_deals`.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use super::fixtures::{deal, new_workspace, write, StoreRef};
use crate::batch::{Deletion, RecordBatch, RecordKind};
use crate::model::{ChangeOrigin, DealField, NewDealChange, StageCategory};
use crate::skill::ScannedDeal;

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, day, hour, 0, 0)
        .single()
        .expect("time")
}

/// A scanned deal with the fields `scan_skill_deals` may leave out cleared.
fn lean(mut d: ScannedDeal) -> ScannedDeal {
    d.fields.properties = serde_json::Value::Null;
    d.fields.stage_label = None;
    d.fields.stage_order = None;
    d.fields.probability = None;
    d.fields.source_updated_at = None;
    d
}

/// Every deal of the workspace (soft-deleted too), in id order, each with
/// its whole history by `(changed_at, id)`, as `scan_deals` gives it but
/// for the fields skills do not read; other workspaces' deals never.
pub async fn skill_deal_scan_matches_scan_deals(store: StoreRef) {
    let ws = new_workspace(&store, "skill scan").await;
    let change = |deal: &str, field, old: Option<&str>, new: Option<&str>, t| NewDealChange {
        deal_source_id: deal.into(),
        field,
        old_value: old.map(Into::into),
        new_value: new.map(Into::into),
        changed_at: t,
        origin: ChangeOrigin::Vendor,
    };
    let mut deals: Vec<_> = (1..=7)
        .map(|i| deal(&format!("d{i}"), Some(i * 100), Some((2026, 6, i as u32))))
        .collect();
    // Values that must come back exactly: a fractional amount, none, a
    // forecast category, a creation time in the source, other stages.
    deals[0].amount = Some(Decimal::new(123_456_789, 4));
    deals[0].forecast_category = Some("Best Case".into());
    deals[0].source_created_at = Some(at(1, 9) + chrono::Duration::microseconds(123_456));
    deals[0].owner_source_id = Some("u1".into());
    deals[0].account_source_id = Some("a1".into());
    deals[1].amount = None;
    deals[1].close_date = None;
    deals[1].currency = None;
    deals[1].pipeline = None;
    deals[2].stage = Some("won".into());
    deals[2].stage_category = StageCategory::Won;
    deals[3].stage = None;
    let batch = RecordBatch {
        deals,
        deal_changes: vec![
            change("d2", DealField::Amount, Some("100"), Some("200"), at(3, 0)),
            change(
                "d2",
                DealField::Stage,
                Some("new"),
                Some("qualified"),
                at(2, 0),
            ),
            change("d2", DealField::Owner, None, Some("u2"), at(2, 0)),
            change(
                "d3",
                DealField::Stage,
                Some("qualified"),
                Some("won"),
                at(4, 0),
            ),
            change(
                "d5",
                DealField::CloseDate,
                Some("2026-06-01"),
                Some("2026-06-05"),
                at(5, 0),
            ),
            change(
                "d5",
                DealField::ForecastCategory,
                None,
                Some("commit"),
                at(1, 0),
            ),
        ],
        ..RecordBatch::new("test")
    };
    write(&store, ws, &batch).await;
    let deletion = RecordBatch {
        deletions: vec![Deletion {
            kind: RecordKind::Deal,
            source_id: "d6".into(),
        }],
        ..RecordBatch::new("test")
    };
    write(&store, ws, &deletion).await;
    // Noise in another workspace.
    let other = new_workspace(&store, "skill scan other").await;
    write(&store, other, &batch).await;

    let mut expected = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan_deals(ws, after, 3).await.expect("scan_deals");
        let done = page.len() < 3;
        after = page.last().map(|d| d.id);
        expected.extend(page.into_iter().map(lean));
        if done {
            break;
        }
    }
    assert_eq!(expected.len(), 7);

    let mut scanned = Vec::new();
    store
        .scan_skill_deals(ws, &mut |d| {
            scanned.push(d);
            Ok(())
        })
        .await
        .expect("scan_skill_deals");
    assert_eq!(
        scanned.len(),
        7,
        "soft-deleted deals included, no other workspace's"
    );
    assert!(
        scanned.iter().all(|d| d.fields.properties.is_null()),
        "no vendor properties"
    );
    let scanned: Vec<ScannedDeal> = scanned.into_iter().map(lean).collect();
    assert_eq!(scanned, expected);

    let d1 = &scanned[scanned
        .iter()
        .position(|d| d.fields.source_id == "d1")
        .expect("d1")];
    assert_eq!(d1.fields.amount, Some(Decimal::new(123_456_789, 4)));
    assert_eq!(d1.fields.forecast_category.as_deref(), Some("Best Case"));
    assert_eq!(
        d1.fields.close_date,
        NaiveDate::from_ymd_opt(2026, 6, 1),
        "close date"
    );
    let d2 = scanned
        .iter()
        .find(|d| d.fields.source_id == "d2")
        .expect("d2");
    assert!(
        d2.changes
            .windows(2)
            .all(|w| (w[0].changed_at, w[0].id) < (w[1].changed_at, w[1].id)),
        "history by (changed_at, id)"
    );
    assert_eq!(d2.changes.len(), 3);

    // An error from the visitor stops the scan and is returned.
    let mut seen = 0;
    let err = store
        .scan_skill_deals(ws, &mut |_| {
            seen += 1;
            Err(crate::Error::internal("stop"))
        })
        .await
        .expect_err("the visitor's error");
    assert_eq!(seen, 1);
    assert!(err.to_string().contains("stop"));

    // An empty workspace scans nothing.
    let empty = new_workspace(&store, "skill scan empty").await;
    let mut none = 0;
    store
        .scan_skill_deals(empty, &mut |_| {
            none += 1;
            Ok(())
        })
        .await
        .expect("empty scan");
    assert_eq!(none, 0);
}
