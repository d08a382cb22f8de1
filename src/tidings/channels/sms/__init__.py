"""SMS channel: GSM 03.38 / UCS-2 encoding and segmentation, and the SMS transports."""
