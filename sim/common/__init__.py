"""qarith.sim.common: verification machinery shared by every block's bench and proof."""
