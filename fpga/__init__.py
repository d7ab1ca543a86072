"""qarith.fpga"""
