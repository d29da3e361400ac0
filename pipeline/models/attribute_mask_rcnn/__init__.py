"""Attribute-Mask R-CNN (Fashionpedia's baseline): Mask R-CNN with an attribute head on the RoIs."""
