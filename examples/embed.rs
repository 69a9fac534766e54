//! Embedding Pandora as a library: an embedded SQLite store, a workspace, a
//! page of records written the way a connector would, and a filtered,
//! paginated query. Runs offline:
//!
//! ```text
//! cargo run -p pandora-examples --example embed
//! ```

use pandora_core::batch::RecordBatch;
use pandora_core::model::{NewDeal, NewUser, NewWorkspace, StageCategory};
use pandora_core::query::{DealFilter, PageRequest};
use pandora_core::Pandora;
use pandora_store_sqlite::SqliteStore;
use rust_decimal::Decimal;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("pandora-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(dir.join("pandora.db")).await?;
    store.migrate().await?;
    let pandora = Pandora::builder().store(store).build()?;

    let created = pandora
        .create_workspace(NewWorkspace {
            name: "Acme".into(),
            ..Default::default()
        })
        .await?;
    let ws = created.workspace.id;
    println!("workspace {ws} (API key {})", created.key.prefix);

    // One page from a source, as a connector pushes it: reps, then deals.
    let mut batch = RecordBatch::new("sample");
    batch.users = vec![NewUser {
        source_id: "rep-1".into(),
        name: Some("Ada Lovelace".into()),
        team: Some("Enterprise".into()),
        active: true,
        ..Default::default()
    }];
    batch.deals = (1..=120)
        .map(|i| NewDeal {
            source_id: format!("deal-{i}"),
            name: format!("Opportunity {i}"),
            amount: Some(Decimal::new(i * 125_000, 2)),
            currency: Some("USD".into()),
            stage: Some(if i % 4 == 0 { "closedwon" } else { "proposal" }.into()),
            stage_category: if i % 4 == 0 {
                StageCategory::Won
            } else {
                StageCategory::Open
            },
            owner_source_id: Some("rep-1".into()),
            ..Default::default()
        })
        .collect();
    let outcome = pandora.ingest(ws, &batch, None).await?;
    println!("first write:  {:?}", outcome.total());
    let outcome = pandora.ingest(ws, &batch, None).await?;
    println!("same page again: {:?}", outcome.total());

    // Open deals of at least 1,000, largest first, 50 per page.
    let filter = DealFilter {
        status: Some(StageCategory::Open),
        min_amount: Some(Decimal::from(1000)),
        ..Default::default()
    };
    let sort = pandora_core::query::Sort {
        key: pandora_core::query::SortKey::Amount,
        direction: pandora_core::query::Direction::Desc,
    };
    let mut page = PageRequest {
        limit: 50,
        sort,
        after: None,
    };
    let mut pages = 0;
    let mut total = 0;
    loop {
        let p = pandora.list_deals(ws, &filter, &page).await?;
        pages += 1;
        total += p.data.len();
        if pages == 1 {
            if let Some(top) = p.data.first() {
                println!(
                    "largest open deal: {} ({} {}), owner id {:?}",
                    top.fields.name,
                    top.fields.amount.unwrap_or_default(),
                    top.fields.currency.as_deref().unwrap_or(""),
                    top.owner_id
                );
            }
        }
        match p.next_cursor {
            Some(c) => page = page.next(c),
            None => break,
        }
    }
    println!("{total} open deals of at least 1,000 in {pages} pages");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
