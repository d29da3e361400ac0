"""Match R-CNN (DeepFashion2's reference model): Mask R-CNN with a landmark stream and a match network."""
