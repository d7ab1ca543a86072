"""qarith.sim"""
