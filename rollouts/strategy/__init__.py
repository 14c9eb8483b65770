"""Pure planners: observed state of one Rollout -> the plan that moves it on."""
