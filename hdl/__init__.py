"""qarith.hdl"""
