"""The condition language of ``successCondition`` / ``failureCondition`` (Argo's expr-lang subset): lexer,
parser and interpreter. Not to be confused with the Rollout's status conditions (rollouts.model.conditions)."""
