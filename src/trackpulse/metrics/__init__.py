"""trackpulse.metrics"""
