"""The sandbox's SageMaker extensions: endpoint lifecycles and rollouts, lineage tracking."""
