"""trackpulse.store"""
