//! Tests of the skill module: settings, periods, the as-of rebuild of deals, the org tree.
