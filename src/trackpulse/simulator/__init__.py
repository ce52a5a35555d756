"""trackpulse.simulator"""
