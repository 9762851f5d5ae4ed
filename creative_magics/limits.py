"""Limits on what is read from files and the network, so a huge or stalled input is refused in one line."""

MAX_PIXELS = 4096 * 4096  # an input image larger than this is refused (16.8 megapixels)
MAX_FILE_BYTES = 50 * 2**20  # files and downloads larger than this are refused
URL_TIMEOUT_S = 15.0  # a URL must answer, and finish, within this
