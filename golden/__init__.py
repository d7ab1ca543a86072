"""qarith.golden"""
