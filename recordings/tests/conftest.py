from whatsapp.tests.conftest import captured  # noqa: F401  (the fixture, for deliveries in these tests)
