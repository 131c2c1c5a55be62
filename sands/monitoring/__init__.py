"""Monitoring: drift, the champion's quality verdicts and online quality from served impressions."""
