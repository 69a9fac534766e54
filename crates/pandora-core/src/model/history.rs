//! Deal field history and the as-of reconstruction of a deal.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::records::Deal;
use super::stage::{PipelineStage, StageCategory};

/// A deal field whose changes are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DealField {
    /// Stage id (`old_value`/`new_value` are stage ids).
    Stage,
    /// Amount (decimal strings).
    Amount,
    /// Close date (`YYYY-MM-DD`).
    CloseDate,
    /// Forecast category.
    ForecastCategory,
    /// Owner (vendor user ids).
    Owner,
}

impl DealField {
    /// Every recorded field.
    pub const ALL: [DealField; 5] = [
        DealField::Stage,
        DealField::Amount,
        DealField::CloseDate,
        DealField::ForecastCategory,
        DealField::Owner,
    ];

    /// The stable string stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DealField::Stage => "stage",
            DealField::Amount => "amount",
            DealField::CloseDate => "close_date",
            DealField::ForecastCategory => "forecast_category",
            DealField::Owner => "owner",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        DealField::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The deal's current value of this field, in history form.
    pub fn value_of(self, deal: &super::records::NewDeal) -> Option<String> {
        match self {
            DealField::Stage => deal.stage.clone(),
            DealField::Amount => deal.amount.map(|a| a.normalize().to_string()),
            DealField::CloseDate => deal.close_date.map(|d| d.to_string()),
            DealField::ForecastCategory => deal.forecast_category.clone(),
            DealField::Owner => deal.owner_source_id.clone(),
        }
    }
}

/// Who reported a [`DealChange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeOrigin {
    /// The vendor's own field history.
    Vendor,
    /// Pandora saw the value differ between two syncs.
    Observed,
}

impl ChangeOrigin {
    /// The stable string stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOrigin::Vendor => "vendor",
            ChangeOrigin::Observed => "observed",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "vendor" => Some(ChangeOrigin::Vendor),
            "observed" => Some(ChangeOrigin::Observed),
            _ => None,
        }
    }
}

/// A change of one deal field, as a connector (or the sync engine) reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDealChange {
    /// Vendor id of the deal (of the batch's source).
    pub deal_source_id: String,
    /// Changed field.
    pub field: DealField,
    /// Value before the change; `None` when empty or unknown.
    pub old_value: Option<String>,
    /// Value after the change; `None` when cleared.
    pub new_value: Option<String>,
    /// When the change happened.
    pub changed_at: DateTime<Utc>,
    /// Who reported it.
    pub origin: ChangeOrigin,
}

/// A stored change of one deal field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DealChange {
    /// Change id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// The deal.
    pub deal_id: Uuid,
    /// Changed field.
    pub field: DealField,
    /// Value before the change.
    pub old_value: Option<String>,
    /// Value after the change.
    pub new_value: Option<String>,
    /// When the change happened.
    pub changed_at: DateTime<Utc>,
    /// Who reported it.
    pub origin: ChangeOrigin,
}

/// A deal's state at a point in time, rebuilt from its field history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DealSnapshot {
    /// The deal.
    pub deal_id: Uuid,
    /// The time the snapshot describes.
    pub as_of: DateTime<Utc>,
    /// Stage id.
    pub stage: Option<String>,
    /// Stage category (from the pipeline's stage catalog when known).
    pub stage_category: StageCategory,
    /// Amount.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub amount: Option<Decimal>,
    /// Close date.
    pub close_date: Option<NaiveDate>,
    /// Forecast category.
    pub forecast_category: Option<String>,
    /// Vendor id of the owner.
    pub owner_source_id: Option<String>,
}

/// Rebuilds `deal` as it stood at `at`, from its field history.
///
/// For every field, the value at `at` is the `new_value` of the latest change
/// at or before `at`; failing that, the `old_value` of the earliest change
/// after `at`; failing that (no history), the current value. Returns `None`
/// when the deal did not exist yet at `at` (created in the source after it).
/// `stages` is the workspace's stage catalog, used to categorise a past stage;
/// a stage missing from it keeps the deal's current category if it is the
/// current stage, and counts as open otherwise.
pub fn deal_as_of(
    deal: &Deal,
    changes: &[DealChange],
    stages: &[PipelineStage],
    at: DateTime<Utc>,
) -> Option<DealSnapshot> {
    if let Some(created) = deal.fields.source_created_at.or(Some(deal.created_at)) {
        if created > at {
            return None;
        }
    }
    let value_at = |field: DealField| -> Option<String> {
        let mut before: Option<&DealChange> = None;
        let mut after: Option<&DealChange> = None;
        for c in changes.iter().filter(|c| c.field == field) {
            if c.changed_at <= at {
                if before.is_none_or(|b| (c.changed_at, c.id) >= (b.changed_at, b.id)) {
                    before = Some(c);
                }
            } else if after.is_none_or(|a| (c.changed_at, c.id) < (a.changed_at, a.id)) {
                after = Some(c);
            }
        }
        match (before, after) {
            (Some(b), _) => b.new_value.clone(),
            (None, Some(a)) => a.old_value.clone(),
            (None, None) => field.value_of(&deal.fields),
        }
    };
    let stage = value_at(DealField::Stage);
    let stage_category = match &stage {
        Some(s) => stages
            .iter()
            .find(|st| {
                &st.fields.stage == s
                    && deal
                        .fields
                        .pipeline
                        .as_ref()
                        .is_none_or(|p| p == &st.fields.pipeline)
            })
            .map(|st| st.fields.category)
            .unwrap_or(if deal.fields.stage.as_ref() == Some(s) {
                deal.fields.stage_category
            } else {
                StageCategory::Open
            }),
        None => StageCategory::Open,
    };
    Some(DealSnapshot {
        deal_id: deal.id,
        as_of: at,
        stage,
        stage_category,
        amount: value_at(DealField::Amount).and_then(|v| v.parse().ok()),
        close_date: value_at(DealField::CloseDate).and_then(|v| v.parse().ok()),
        forecast_category: value_at(DealField::ForecastCategory),
        owner_source_id: value_at(DealField::Owner),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NewDeal;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, day, 0, 0, 0)
            .single()
            .expect("time")
    }

    fn deal() -> Deal {
        Deal {
            id: Uuid::now_v7(),
            workspace_id: Uuid::now_v7(),
            source: "s".into(),
            fields: NewDeal {
                source_id: "d".into(),
                name: "d".into(),
                stage: Some("won".into()),
                stage_category: StageCategory::Won,
                amount: Some(Decimal::from(10)),
                source_created_at: Some(at(1)),
                ..Default::default()
            },
            owner_id: None,
            account_id: None,
            computed: None,
            created_at: at(20),
            updated_at: at(20),
            deleted_at: None,
        }
    }

    fn change(field: DealField, old: Option<&str>, new: Option<&str>, day: u32) -> DealChange {
        DealChange {
            id: Uuid::now_v7(),
            workspace_id: Uuid::nil(),
            deal_id: Uuid::nil(),
            field,
            old_value: old.map(Into::into),
            new_value: new.map(Into::into),
            changed_at: at(day),
            origin: ChangeOrigin::Vendor,
        }
    }

    #[test]
    fn without_history_the_current_state_holds() {
        let d = deal();
        let s = deal_as_of(&d, &[], &[], at(5)).expect("exists");
        assert_eq!(s.stage.as_deref(), Some("won"));
        assert_eq!(s.stage_category, StageCategory::Won);
        assert_eq!(s.amount, Some(Decimal::from(10)));
    }

    #[test]
    fn vendor_history_without_old_values_uses_the_latest_earlier_value() {
        // HubSpot gives only (value, timestamp) pairs.
        let d = deal();
        let h = vec![
            change(DealField::Stage, None, Some("appointment"), 1),
            change(DealField::Stage, None, Some("contract"), 4),
            change(DealField::Stage, None, Some("won"), 9),
        ];
        let s = deal_as_of(&d, &h, &[], at(5)).expect("exists");
        assert_eq!(s.stage.as_deref(), Some("contract"));
        assert_eq!(
            s.stage_category,
            StageCategory::Open,
            "unknown past stage counts as open"
        );
        let s = deal_as_of(&d, &h, &[], at(10)).expect("exists");
        assert_eq!(s.stage_category, StageCategory::Won);
    }

    #[test]
    fn the_deal_does_not_exist_before_it_was_created() {
        assert!(deal_as_of(&deal(), &[], &[], at(1) - chrono::Duration::seconds(1)).is_none());
    }
}
