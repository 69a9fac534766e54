use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Normalized category of a deal stage.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StageCategory {
    /// Still being worked.
    #[default]
    Open,
    /// Closed won.
    Won,
    /// Closed lost.
    Lost,
}

impl StageCategory {
    /// The stable string stored in the database and used in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            StageCategory::Open => "open",
            StageCategory::Won => "won",
            StageCategory::Lost => "lost",
        }
    }

    /// Parses `open`, `won` or `lost`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => StageCategory::Open,
            "won" => StageCategory::Won,
            "lost" => StageCategory::Lost,
            _ => return None,
        })
    }
}

/// A stage of a vendor pipeline, as a connector describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPipelineStage {
    /// Pipeline id.
    pub pipeline: String,
    /// Pipeline label.
    pub pipeline_label: Option<String>,
    /// Stage id.
    pub stage: String,
    /// Stage label.
    pub label: Option<String>,
    /// Normalized category.
    pub category: StageCategory,
    /// Display order within the pipeline.
    pub display_order: Option<i32>,
    /// Win probability, 0–1.
    pub probability: Option<f64>,
}

impl NewPipelineStage {
    /// The key the stage is stored under: `pipeline/stage`.
    pub fn source_id(&self) -> String {
        format!("{}/{}", self.pipeline, self.stage)
    }
}

/// A stored [`NewPipelineStage`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PipelineStage {
    /// Pandora id.
    pub id: Uuid,
    /// Owning workspace.
    pub workspace_id: Uuid,
    /// Source (connector id).
    pub source: String,
    /// The stage as delivered.
    #[serde(flatten)]
    pub fields: NewPipelineStage,
}
