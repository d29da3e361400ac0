"""Scenes of the synthetic dataset: figures wearing garments, drawn together with their masks.

`compose.render` draws one scene; the modules below it each draw or describe one thing:
`colors`, `fabric` (textile patterns), `shapes` (polygons to masks), `canvas` (occlusion),
`figure` (body geometry), `body`, `dresser` (shared garment parts), `tops`, `skirts`,
`legwear`, `outerwear`, `accessories` and `outfit` (which garments a figure wears).

Classes are told apart by shape, place on the body and a class-typical palette; attributes are
drawn so they can be seen: the textile pattern as texture, lengths and fits as geometry, neckline,
collar, lapel, pocket and opening types as their shapes. An instance in the unannotated mottled
fabric gets no attributes (nor do its parts), so an empty attribute set is learnable too.
"""
