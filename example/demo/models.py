from django.db import models
from django.utils import timezone


class Note(models.Model):
    text = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.text
